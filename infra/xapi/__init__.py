"""The xAPI LRS's storage: its event table, its query tables and their wiring."""
