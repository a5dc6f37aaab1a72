-- notify's tables as commit 78546e7's create_all made them (postgresql); generated once from that commit, never edited: a database from before migrations.

CREATE TABLE inbox (
	event_id VARCHAR(36) NOT NULL,
	event_type VARCHAR(100) NOT NULL,
	applied_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (event_id)
);

CREATE TABLE outbox (
	id SERIAL NOT NULL,
	topic VARCHAR(200) NOT NULL,
	key VARCHAR(100),
	value BYTEA NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	sent_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (id)
);

CREATE INDEX ix_outbox_unsent ON outbox (sent_at, id);

CREATE TABLE message (
	key VARCHAR(160) NOT NULL,
	dossier_code VARCHAR(60) NOT NULL,
	trigger VARCHAR(40) NOT NULL,
	channel VARCHAR(10) NOT NULL,
	recipient VARCHAR(200) NOT NULL,
	subject VARCHAR(300),
	body TEXT NOT NULL,
	status VARCHAR(20) NOT NULL,
	attempts INTEGER NOT NULL,
	last_error VARCHAR(300),
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	next_attempt_at TIMESTAMP WITH TIME ZONE NOT NULL,
	claim VARCHAR(36),
	claimed_at TIMESTAMP WITH TIME ZONE,
	sent_at TIMESTAMP WITH TIME ZONE,
	delivered_at TIMESTAMP WITH TIME ZONE,
	sink VARCHAR(20),
	provider_id VARCHAR(100),
	PRIMARY KEY (key)
);

CREATE INDEX ix_message_dossier_code ON message (dossier_code);

CREATE INDEX ix_message_claim ON message (claim);

CREATE INDEX ix_message_due ON message (status, next_attempt_at);

CREATE TABLE message_html (
	key VARCHAR(160) NOT NULL,
	html TEXT NOT NULL,
	PRIMARY KEY (key)
);

CREATE TABLE addressee (
	dossier_code VARCHAR(60) NOT NULL,
	name VARCHAR(200) NOT NULL,
	phone VARCHAR(40),
	email VARCHAR(200),
	procedure_code VARCHAR(40) NOT NULL,
	receiving_unit VARCHAR(60) NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (dossier_code)
);

CREATE TABLE opt_out (
	target VARCHAR(100) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (target)
);

CREATE TABLE trigger_toggle (
	procedure_code VARCHAR(40) NOT NULL,
	receiving_unit VARCHAR(60) NOT NULL,
	trigger VARCHAR(40) NOT NULL,
	enabled BOOLEAN NOT NULL,
	PRIMARY KEY (procedure_code, receiving_unit, trigger)
);

CREATE TABLE office_head (
	unit VARCHAR(60) NOT NULL,
	name VARCHAR(200) NOT NULL,
	email VARCHAR(254) NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (unit)
);

CREATE TABLE report_fact (
	code VARCHAR(60) NOT NULL,
	unit VARCHAR(60) NOT NULL,
	field VARCHAR(200) NOT NULL,
	procedure VARCHAR(40) NOT NULL,
	level VARCHAR(10) NOT NULL,
	channel VARCHAR(10) NOT NULL,
	received_at TIMESTAMP WITH TIME ZONE,
	due_at TIMESTAMP WITH TIME ZONE,
	finished_at TIMESTAMP WITH TIME ZONE,
	outcome VARCHAR(10),
	supplement_requests INTEGER NOT NULL,
	withdrawn_at TIMESTAMP WITH TIME ZONE,
	PRIMARY KEY (code)
);

CREATE INDEX ix_report_fact_open_due ON report_fact (finished_at, withdrawn_at, due_at);

CREATE TABLE report_day (
	dim VARCHAR(12) NOT NULL,
	key VARCHAR(260) NOT NULL,
	day DATE NOT NULL,
	measure VARCHAR(24) NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (dim, key, day, measure)
);

CREATE INDEX ix_report_day_dim_day ON report_day (dim, day, key, measure, n);

CREATE TABLE report_due (
	dim VARCHAR(12) NOT NULL,
	key VARCHAR(260) NOT NULL,
	due_day DATE NOT NULL,
	closed_day DATE NOT NULL,
	measure VARCHAR(24) NOT NULL,
	n INTEGER NOT NULL,
	PRIMARY KEY (dim, key, due_day, closed_day, measure)
);

CREATE INDEX ix_report_due_dim_closed ON report_due (dim, closed_day, due_day, key, measure, n);

CREATE TABLE report_due_soon (
	code VARCHAR(60) NOT NULL,
	office VARCHAR(60),
	due_at TIMESTAMP WITH TIME ZONE NOT NULL,
	warned_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (code)
);

CREATE TABLE report_needs_apology (
	code VARCHAR(60) NOT NULL,
	office VARCHAR(60),
	due_at TIMESTAMP WITH TIME ZONE NOT NULL,
	warned_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (code)
);

CREATE TABLE api_key_copy (
	key_id VARCHAR(20) NOT NULL,
	secret_hash VARCHAR(64) NOT NULL,
	role VARCHAR(20) NOT NULL,
	unit VARCHAR(20) NOT NULL,
	revoked BOOLEAN NOT NULL,
	revoked_at TIMESTAMP WITH TIME ZONE,
	changed_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (key_id)
);
