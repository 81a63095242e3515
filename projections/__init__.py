"""Read models: balances, boards, audit trails, built from the notification log."""
