#!/bin/sh
# Provision motcua on a Kafka cluster: the topics with their partition counts, one SCRAM
# user per service, and what each user may do (ACLs). Safe to run again: topics are kept
# (a topic with fewer partitions than stated fails the run), passwords are set again
# (that is how one is changed), ACLs already there are kept.
#
# docker-compose.yml runs it as `kafka-init`, inside the bundled broker's network
# namespace, over the broker's loopback-only listener (127.0.0.1:9091, whose anonymous
# principal is the only super user). For another cluster, run it with an admin's client
# config, from any machine with Kafka's command-line tools:
#   BOOTSTRAP=kafka1:9092 COMMAND_CONFIG=admin.properties KAFKA_BIN=/opt/kafka/bin \
#   MOTCUA_KAFKA_PASSWORD_INTAKE=... (and _ROUTING, _SLA, _NOTIFY, _PORTAL) sh deploy/kafka/provision.sh
#
# Who may do what (every other request is refused: allow.everyone.if.no.acl.found=false):
#   service  writes                                       reads
#   intake   lifecycle, contacts, calendar, keys          routing, calendar, catalogue
#   routing  routing, catalogue                           lifecycle, sla, calendar, keys
#   sla      sla                                          lifecycle, routing, calendar, keys, sla
#   notify   -                                            lifecycle, contacts, sla, keys, catalogue
#   portal   -                                            lifecycle, routing, contacts, keys, catalogue
# (topics named without their `motcua.` / `motcua.dossier.` prefix). Each service also
# writes the dead-letter twin (`<topic>.dlq`) of every topic it reads, reads the twins
# of the topics it writes (to replay them: `motcua dlq replay`, run in the writing
# service's container), and uses the consumer groups `motcua-<service>` and
# `motcua-<service>-*` (prefixed), and `motcua-dlq-replay` if it replays.
set -eu

BOOTSTRAP=${BOOTSTRAP:-127.0.0.1:9091}
KAFKA_BIN=${KAFKA_BIN:-/opt/kafka/bin}
REPLICATION_FACTOR=${REPLICATION_FACTOR:-1}

LIFECYCLE=motcua.dossier.lifecycle
CONTACTS=motcua.dossier.contacts
ROUTING=motcua.dossier.routing
SLA=motcua.dossier.sla
CATALOGUE=motcua.catalogue
CALENDAR=motcua.calendar
KEYS=motcua.keys

tool() {
  name=$1
  shift
  if [ -n "${COMMAND_CONFIG:-}" ]; then
    "$KAFKA_BIN/$name" --bootstrap-server "$BOOTSTRAP" --command-config "$COMMAND_CONFIG" "$@"
  else
    "$KAFKA_BIN/$name" --bootstrap-server "$BOOTSTRAP" "$@"
  fi
}

# password_of <variable>: a service's password, refused unless long and plain enough to
# sit in kafka-configs.sh's SCRAM-SHA-512=[...] syntax. Every one is checked before
# anything is changed.
password_of() {
  password=$(printenv "$1" || true)
  case "$password" in
    '' | *[!A-Za-z0-9_-]*)
      echo "$1: set it to a service's Kafka password (letters, digits, - and _; deploy/secrets.sh makes them)" >&2
      exit 1
      ;;
  esac
  if [ "${#password}" -lt 24 ]; then
    echo "$1: at least 24 characters" >&2
    exit 1
  fi
  printf '%s' "$password"
}

for service in INTAKE ROUTING SLA NOTIFY; do
  password_of "MOTCUA_KAFKA_PASSWORD_$service" > /dev/null
done

# -- topics --------------------------------------------------------------------------

create() {
  tool kafka-topics.sh --create --if-not-exists --topic "$1" --partitions "$2" --replication-factor "$REPLICATION_FACTOR" --config "cleanup.policy=${3:-delete}"
  actual=$(tool kafka-topics.sh --describe --topic "$1" | sed -n 's/.*PartitionCount: *\([0-9][0-9]*\).*/\1/p' | head -n 1)
  if [ -z "$actual" ] || [ "$actual" -lt "$2" ]; then
    echo "topic $1 has ${actual:-no} partitions, expected $2" >&2
    exit 1
  fi
  echo "topic $1: $actual partitions"
}

create motcua.dossier.lifecycle 6
create motcua.dossier.contacts 6
create motcua.dossier.routing 6
create motcua.dossier.sla 6
create motcua.catalogue 1
create motcua.calendar 1
create motcua.keys 1 compact
create motcua.dossier.lifecycle.dlq 1
create motcua.dossier.contacts.dlq 1
create motcua.dossier.routing.dlq 1
create motcua.dossier.sla.dlq 1
create motcua.catalogue.dlq 1
create motcua.calendar.dlq 1
create motcua.keys.dlq 1

# -- users ---------------------------------------------------------------------------

user() {
  password=$(password_of "$2")
  tool kafka-configs.sh --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
  echo "user $1: SCRAM-SHA-512 password set"
}

user intake MOTCUA_KAFKA_PASSWORD_INTAKE
user routing MOTCUA_KAFKA_PASSWORD_ROUTING
user sla MOTCUA_KAFKA_PASSWORD_SLA
user notify MOTCUA_KAFKA_PASSWORD_NOTIFY
user portal MOTCUA_KAFKA_PASSWORD_PORTAL

# -- ACLs ----------------------------------------------------------------------------

# allow <user> <operation> <topic>...
allow() {
  principal=$1
  operation=$2
  shift 2
  listed=$*
  count=$#
  while [ "$count" -gt 0 ]; do # each topic becomes "--topic <topic>"
    set -- "$@" --topic "$1"
    shift
    count=$((count - 1))
  done
  tool kafka-acls.sh --add --allow-principal "User:$principal" --operation "$operation" "$@" > /dev/null
  echo "acl $principal: $operation $listed"
}

# groups <user>: its consumer groups, motcua-<user> and motcua-<user>-<instance>
groups() {
  tool kafka-acls.sh --add --allow-principal "User:$1" --operation Read --group "motcua-$1" --resource-pattern-type prefixed > /dev/null
  echo "acl $1: Read groups motcua-$1*"
}

# replays <user>: the replay group of `motcua dlq replay`
replays() {
  tool kafka-acls.sh --add --allow-principal "User:$1" --operation Read --group motcua-dlq-replay > /dev/null
  echo "acl $1: Read group motcua-dlq-replay"
}

allow intake Write "$LIFECYCLE" "$CONTACTS" "$CALENDAR" "$KEYS"
allow intake Read "$ROUTING" "$CALENDAR" "$CATALOGUE"
allow intake Write "$ROUTING.dlq" "$CALENDAR.dlq" "$CATALOGUE.dlq"
allow intake Read "$LIFECYCLE.dlq" "$CONTACTS.dlq" "$CALENDAR.dlq" "$KEYS.dlq"
groups intake
replays intake

allow routing Write "$ROUTING" "$CATALOGUE"
allow routing Read "$LIFECYCLE" "$SLA" "$CALENDAR" "$KEYS"
allow routing Write "$LIFECYCLE.dlq" "$SLA.dlq" "$CALENDAR.dlq" "$KEYS.dlq"
allow routing Read "$ROUTING.dlq" "$CATALOGUE.dlq"
groups routing
replays routing

allow sla Write "$SLA"
allow sla Read "$LIFECYCLE" "$ROUTING" "$CALENDAR" "$KEYS" "$SLA"
allow sla Write "$LIFECYCLE.dlq" "$ROUTING.dlq" "$CALENDAR.dlq" "$KEYS.dlq"
allow sla Read "$SLA.dlq"
groups sla
replays sla

allow notify Read "$LIFECYCLE" "$CONTACTS" "$SLA" "$KEYS" "$CATALOGUE"
allow notify Write "$LIFECYCLE.dlq" "$CONTACTS.dlq" "$SLA.dlq" "$KEYS.dlq" "$CATALOGUE.dlq"
groups notify

# the portal's record names the applicant: it reads the contacts, as notify does
allow portal Read "$LIFECYCLE" "$ROUTING" "$CONTACTS" "$KEYS" "$CATALOGUE"
allow portal Write "$LIFECYCLE.dlq" "$ROUTING.dlq" "$CONTACTS.dlq" "$KEYS.dlq" "$CATALOGUE.dlq"
groups portal

echo "motcua provisioned on $BOOTSTRAP"
