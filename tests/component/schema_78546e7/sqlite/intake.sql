-- intake's tables as commit 78546e7's create_all made them (sqlite); generated once from that commit, never edited: a database from before migrations.

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

CREATE TABLE dossier (
	code VARCHAR(40) NOT NULL,
	procedure_code VARCHAR(40) NOT NULL,
	channel VARCHAR(10) NOT NULL,
	receiving_unit VARCHAR(20) NOT NULL,
	status VARCHAR(30) NOT NULL,
	submitted_at DATETIME NOT NULL,
	received_at DATETIME,
	due_at DATETIME,
	extended_due_at DATETIME,
	extensions INTEGER NOT NULL,
	action_sequence INTEGER NOT NULL,
	last_event_at DATETIME NOT NULL,
	office VARCHAR(20),
	applicant_name VARCHAR(200) NOT NULL,
	applicant_phone VARCHAR(20),
	applicant_email VARCHAR(200),
	applicant_id_number VARCHAR(12),
	documents JSON NOT NULL,
	PRIMARY KEY (code)
);

CREATE INDEX ix_dossier_receiving_unit ON dossier (receiving_unit);

CREATE TABLE dossier_history (
	code VARCHAR(40) NOT NULL,
	position INTEGER NOT NULL,
	action VARCHAR(30) NOT NULL,
	sequence INTEGER,
	at DATETIME NOT NULL,
	status VARCHAR(30) NOT NULL,
	reason VARCHAR(1000),
	new_due_at DATETIME,
	office VARCHAR(20),
	key_id VARCHAR(20),
	PRIMARY KEY (code, position)
);

CREATE TABLE dossier_sequence (
	receiving_unit VARCHAR(20) NOT NULL,
	day DATE NOT NULL,
	last INTEGER NOT NULL,
	PRIMARY KEY (receiving_unit, day)
);

CREATE TABLE api_key (
	key_id VARCHAR(20) NOT NULL,
	secret_hash VARCHAR(64) NOT NULL,
	role VARCHAR(20) NOT NULL,
	unit VARCHAR(20) NOT NULL,
	label VARCHAR(200) NOT NULL,
	created_at DATETIME NOT NULL,
	revoked_at DATETIME,
	PRIMARY KEY (key_id)
);

CREATE TABLE api_key_publication (
	key_id VARCHAR(20) NOT NULL,
	revoked BOOLEAN NOT NULL,
	PRIMARY KEY (key_id)
);

CREATE TABLE idempotent_answer (
	key_id VARCHAR(20) NOT NULL,
	idempotency_key VARCHAR(200) NOT NULL,
	request_hash VARCHAR(64) NOT NULL,
	status_code INTEGER NOT NULL,
	body JSON NOT NULL,
	created_at DATETIME NOT NULL,
	PRIMARY KEY (key_id, idempotency_key)
);

CREATE TABLE queue_counter (
	counter_id VARCHAR(40) NOT NULL,
	unit VARCHAR(20) NOT NULL,
	counter_group VARCHAR(3) NOT NULL,
	fields JSON NOT NULL,
	procedures JSON NOT NULL,
	paused_reason VARCHAR(300),
	paused_at DATETIME,
	PRIMARY KEY (counter_id)
);

CREATE INDEX ix_queue_counter_unit ON queue_counter (unit);

CREATE TABLE queue_ticket (
	ticket_id VARCHAR(32) NOT NULL,
	unit VARCHAR(20) NOT NULL,
	counter_group VARCHAR(3) NOT NULL,
	day DATE NOT NULL,
	sequence INTEGER NOT NULL,
	number VARCHAR(20) NOT NULL,
	priority VARCHAR(10) NOT NULL,
	rank INTEGER NOT NULL,
	field VARCHAR(200) NOT NULL,
	procedure_code VARCHAR(40),
	state VARCHAR(10) NOT NULL,
	counter_id VARCHAR(40),
	cancel_reason VARCHAR(30),
	issued_at DATETIME NOT NULL,
	called_at DATETIME,
	served_at DATETIME,
	finished_at DATETIME,
	dossier_code VARCHAR(40),
	PRIMARY KEY (ticket_id),
	UNIQUE (dossier_code)
);

CREATE INDEX ix_queue_ticket_counter_id ON queue_ticket (counter_id);

CREATE TABLE queue_ticket_sequence (
	unit VARCHAR(20) NOT NULL,
	counter_group VARCHAR(3) NOT NULL,
	day DATE NOT NULL,
	last INTEGER NOT NULL,
	PRIMARY KEY (unit, counter_group, day)
);

CREATE TABLE catalogue_copy (
	version INTEGER NOT NULL,
	published_at DATETIME NOT NULL,
	procedures TEXT NOT NULL,
	PRIMARY KEY (version)
);
