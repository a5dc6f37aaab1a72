-- routing's tables as commit 78546e7's create_all made them (sqlite); generated once from that commit, never edited: a database from before migrations.

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

CREATE TABLE rule_set_version (
	version INTEGER NOT NULL,
	changed_at DATETIME NOT NULL,
	changed_by VARCHAR(100) NOT NULL,
	change VARCHAR(500) NOT NULL,
	rules TEXT NOT NULL,
	PRIMARY KEY (version)
);

CREATE TABLE assignment (
	dossier_code VARCHAR(40) NOT NULL,
	procedure_code VARCHAR(40) NOT NULL,
	office VARCHAR(20) NOT NULL,
	field VARCHAR(200) NOT NULL,
	rule VARCHAR(300) NOT NULL,
	explanation TEXT NOT NULL,
	rule_version INTEGER NOT NULL,
	catalogue_version INTEGER NOT NULL,
	receiving_unit VARCHAR(20) NOT NULL,
	channel VARCHAR(10) NOT NULL,
	level VARCHAR(10),
	received_at DATETIME NOT NULL,
	routed_at DATETIME NOT NULL,
	current_step INTEGER NOT NULL,
	action_sequence INTEGER NOT NULL,
	manual BOOLEAN NOT NULL,
	closed_at DATETIME,
	PRIMARY KEY (dossier_code)
);

CREATE INDEX ix_assignment_office ON assignment (office);

CREATE TABLE chain_step (
	dossier_code VARCHAR(40) NOT NULL,
	position INTEGER NOT NULL,
	office VARCHAR(20) NOT NULL,
	working_minutes INTEGER NOT NULL,
	started_at DATETIME,
	due_at DATETIME,
	ended_at DATETIME,
	PRIMARY KEY (dossier_code, position)
);

CREATE TABLE manual_queue (
	dossier_code VARCHAR(40) NOT NULL,
	procedure_code VARCHAR(40) NOT NULL,
	reason TEXT NOT NULL,
	field VARCHAR(200) NOT NULL,
	receiving_unit VARCHAR(20) NOT NULL,
	channel VARCHAR(10) NOT NULL,
	level VARCHAR(10),
	catalogue_version INTEGER NOT NULL,
	rule_version INTEGER NOT NULL,
	received_at DATETIME NOT NULL,
	queued_at DATETIME NOT NULL,
	PRIMARY KEY (dossier_code)
);

CREATE TABLE catalogue_version (
	version INTEGER NOT NULL,
	changed_at DATETIME NOT NULL,
	changed_by VARCHAR(100) NOT NULL,
	change VARCHAR(500) NOT NULL,
	procedures TEXT NOT NULL,
	published_at DATETIME,
	PRIMARY KEY (version)
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
