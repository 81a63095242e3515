"""Read models (issue 3): balances, boards, audit trails, built from the notification log."""
