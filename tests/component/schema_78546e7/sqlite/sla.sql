-- sla's tables as commit 78546e7's create_all made them (sqlite); generated once from that commit, never edited: a database from before migrations.

CREATE TABLE inbox (
	event_id VARCHAR(36) NOT NULL,
	event_type VARCHAR(100) NOT NULL,
	applied_at DATETIME NOT NULL,
	PRIMARY KEY (event_id)
);

CREATE TABLE outbox (
	id INTEGER NOT NULL,
	topic VARCHAR(200) NOT NULL,
	"key" VARCHAR(100),
	value BLOB NOT NULL,
	created_at DATETIME NOT NULL,
	sent_at DATETIME,
	PRIMARY KEY (id)
);

CREATE INDEX ix_outbox_unsent ON outbox (sent_at, id);

CREATE TABLE tracked_dossier (
	code VARCHAR(40) NOT NULL,
	version INTEGER NOT NULL,
	started_at DATETIME,
	slip_due_at DATETIME,
	limit_value VARCHAR(20),
	limit_unit VARCHAR(20),
	supplement_rule VARCHAR(10),
	procedure_code VARCHAR(40),
	receiving_unit VARCHAR(20),
	channel VARCHAR(10),
	office VARCHAR(20),
	steps JSON,
	phase VARCHAR(12) NOT NULL,
	due_at DATETIME,
	due_soon_at DATETIME,
	finished_at DATETIME,
	outcome VARCHAR(10),
	next_deadline DATETIME,
	tracked_at DATETIME NOT NULL,
	PRIMARY KEY (code)
);

CREATE INDEX ix_tracked_dossier_office ON tracked_dossier (office);

CREATE INDEX ix_tracked_dossier_next_deadline ON tracked_dossier (next_deadline);

CREATE TABLE sla_ledger (
	id INTEGER NOT NULL,
	code VARCHAR(40) NOT NULL,
	sequence INTEGER NOT NULL,
	action VARCHAR(30) NOT NULL,
	at DATETIME NOT NULL,
	reason TEXT,
	new_due_at DATETIME,
	office VARCHAR(20),
	PRIMARY KEY (id),
	CONSTRAINT uq_sla_ledger_sequence UNIQUE (code, sequence)
);

CREATE INDEX ix_sla_ledger_code ON sla_ledger (code);

CREATE TABLE sla_flag (
	code VARCHAR(40) NOT NULL,
	kind VARCHAR(20) NOT NULL,
	step INTEGER NOT NULL,
	emitted_at DATETIME NOT NULL,
	PRIMARY KEY (code, kind, step)
);

CREATE TABLE api_key_copy (
	key_id VARCHAR(20) NOT NULL,
	secret_hash VARCHAR(64) NOT NULL,
	role VARCHAR(20) NOT NULL,
	unit VARCHAR(20) NOT NULL,
	revoked BOOLEAN NOT NULL,
	revoked_at DATETIME,
	changed_at DATETIME NOT NULL,
	PRIMARY KEY (key_id)
);
