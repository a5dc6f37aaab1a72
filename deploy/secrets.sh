#!/bin/sh
# The secrets docker-compose.yml needs, made once into .env next to it (mode 600):
#   MOTCUA_DEPLOY_KEYS_SIGNING_SECRET      signs the api_key.changed events (every service)
#   MOTCUA_DEPLOY_KAFKA_PASSWORD_<SERVICE> the Kafka (SCRAM) password of each service
#   MOTCUA_DEPLOY_NOTIFY_OPT_OUT_SECRET    keys notify's opt-out fingerprints (HMAC)
# A value already in the file is kept, so running it again changes nothing. Usage:
#   sh deploy/secrets.sh [env-file]          (default: .env at the repository root)
# Keep the file out of version control and out of backups anyone can read.
set -eu

cd "$(dirname "$0")/.."
env_file=${1:-.env}
umask 077
touch "$env_file"
chmod 600 "$env_file"

random() {
  od -An -N32 -tx1 /dev/urandom | tr -d ' \n'
}

add() {
  if grep -q "^$1=" "$env_file"; then
    echo "$1: kept"
  else
    printf '%s=%s\n' "$1" "$(random)" >> "$env_file"
    echo "$1: made"
  fi
}

add MOTCUA_DEPLOY_KEYS_SIGNING_SECRET
add MOTCUA_DEPLOY_NOTIFY_OPT_OUT_SECRET
for service in INTAKE ROUTING SLA NOTIFY PORTAL; do
  add "MOTCUA_DEPLOY_KAFKA_PASSWORD_$service"
done
case $env_file in
  /*) echo "secrets in $env_file" ;;
  *) echo "secrets in $(pwd)/$env_file" ;;
esac
