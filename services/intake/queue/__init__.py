"""Queue kiosks (máy bốc số) and display boards: tickets, counters and the called numbers."""
