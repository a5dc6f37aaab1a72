"""The sync to the national public-service portal (Cổng DVCQG): a ledger per dossier."""
