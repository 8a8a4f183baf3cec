"""A simulated FI back office (CRM, fraud, cards, contact center, push, Twilio-like SMS,
credit bureau, core banking, billing).

It runs as its own process and imports nothing else of fiflow: it stands in for systems
we do not own, so fiflow's clients must work from its HTTP shapes alone.
"""
