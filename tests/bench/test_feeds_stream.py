"""The stream benchmark's arithmetic: lag figures and growth, pairing alerts with their SMS."""

from __future__ import annotations

from bench.feeds_stream import Sample, is_alert_sms, lag_figures, pair_sms, slope


def test_slope_is_least_squares() -> None:
    assert slope([(0, 1), (1, 3), (2, 5)]) == 2
    assert slope([(0, 1)]) is None
    assert slope([(1, 1), (1, 2)]) is None


def test_a_lag_that_keeps_up_is_not_growing_and_one_that_climbs_is() -> None:
    flat = [Sample(100 + t / 2, 10 + (t % 3), 5) for t in range(40)]
    figures = lag_figures(flat, 100, 120, rate=2000)
    assert (figures["lag_max"], figures["lag_growing"]) == (17, False)
    assert figures["samples"] == 40
    climbing = [Sample(100 + t / 2, 100 * t, 0) for t in range(40)]  # +200 messages/s
    assert lag_figures(climbing, 100, 120, rate=2000)["lag_growing"] is True
    # Samples outside the publishing window do not count.
    assert lag_figures(climbing, 200, 220, rate=2000)["lag_p99"] is None


def test_alerts_pair_with_their_customers_sms_in_order() -> None:
    alerting = [
        {"transaction_id": "t2", "customer_id": "c1", "published_at": 12.0},
        {"transaction_id": "t1", "customer_id": "c1", "published_at": 10.0},
        {"transaction_id": "t3", "customer_id": "c2", "published_at": 10.0},
    ]
    sms = {
        "c1": [
            {"sent_at": "1970-01-01T00:00:12.300000Z"},
            {"sent_at": "1970-01-01T00:00:10.250000Z"},
        ]
    }
    latencies, missing = pair_sms(alerting, sms)
    assert [round(v, 3) for v in latencies] == [0.25, 0.3]
    assert missing == 1


def test_only_alert_texts_about_generated_alerts_count() -> None:
    assert is_alert_sms({"body": "Fiflow Bank: GLOBAL GADGETS ONLINE $5,000.00 ... Reply YES"})
    assert not is_alert_sms({"body": "Fiflow Bank: $600.00 at CORNER GROCERY. No reply needed."})
