"""The seeded customers with lookups by ID, phone, push device and card."""

from __future__ import annotations

from fiflow.sandbox.phones import canonical
from fiflow.sandbox.seed import Account, Card, Customer, build_customers


class Directory:
    """Customers and their cards; card status is the only mutable part."""

    def __init__(self, seed: int, count: int) -> None:
        self._seed = seed
        self._count = count
        self.reset()

    def reset(self) -> None:
        """Rebuild from the seed, which restores every card to its seeded status."""
        self.customers: list[Customer] = build_customers(self._seed, self._count)
        self._by_id = {c.customer_id: c for c in self.customers}
        # Records may write a number with spaces and dashes; a search finds it either way.
        self._by_phone = {canonical(c.phone): c for c in self.customers}
        self._devices = {c.push_device_id for c in self.customers if c.push_device_id}
        self._cards = {
            (c.customer_id, card.last4): card for c in self.customers for card in c.cards
        }
        self._accounts = {a.account_id: a for c in self.customers for a in c.accounts}

    def customer(self, customer_id: str) -> Customer | None:
        """The customer with that ID, if any."""
        return self._by_id.get(customer_id)

    def by_phone(self, phone: str) -> Customer | None:
        """The customer with that phone, however either side writes it, if any."""
        return self._by_phone.get(canonical(phone))

    def has_device(self, device_id: str) -> bool:
        """Whether some customer owns that push device."""
        return device_id in self._devices

    def card(self, customer_id: str, last4: str) -> Card | None:
        """A customer's card by its last four digits, if any."""
        return self._cards.get((customer_id, last4))

    def account(self, account_id: str) -> Account | None:
        """A seeded account by its ID, if any."""
        return self._accounts.get(account_id)
