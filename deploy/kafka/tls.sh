#!/bin/sh
# TLS of the bundled Kafka broker, made at the first `docker compose up` (the `kafka-tls`
# service runs this once, before `kafka` starts). Nothing secret is in the repository.
#
#   - a CA of this deployment signs the broker's certificate (CN and SAN `kafka`, the
#     name the services connect to; `localhost` too); its private key is thrown away
#     once it has signed, so no other certificate can ever be made under it;
#   - the broker's keystore (PKCS12) and its random password go to $SECRETS_DIR (the
#     `kafka-secrets` volume, mounted by `kafka` only), readable by the broker's user;
#   - the CA's certificate goes to $CA_DIR/ca.pem (the `kafka-ca` volume, mounted read-only
#     by the four services: MOTCUA_KAFKA_SSL_CAFILE).
#
# Kept when both are there already. To renew (the certificate is valid $TLS_DAYS days):
#   docker compose down && docker volume rm <project>_kafka-secrets <project>_kafka-ca
#   docker compose up -d
# Needs keytool (the Kafka image's JRE has it), od and /dev/urandom.
set -eu

SECRETS_DIR=${SECRETS_DIR:-/etc/kafka/secrets}
CA_DIR=${CA_DIR:-/motcua/kafka-ca}
TLS_DAYS=${TLS_DAYS:-825}
TLS_HOSTS=${TLS_HOSTS:-dns:kafka,dns:localhost}
OWNER=${OWNER:-appuser}

if [ -s "$SECRETS_DIR/kafka.keystore.p12" ] && [ -s "$SECRETS_DIR/kafka_keystore_creds" ] \
  && [ -s "$CA_DIR/ca.pem" ]; then
  echo "kafka TLS: keystore and CA certificate already made, kept"
  exit 0
fi

umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
password=$(od -An -N24 -tx1 /dev/urandom | tr -d ' \n')

keytool -genkeypair -noprompt -alias ca -keyalg RSA -keysize 3072 -validity "$TLS_DAYS" \
  -dname "CN=motcua Kafka CA" \
  -ext BasicConstraints:critical=ca:true -ext KeyUsage:critical=keyCertSign,cRLSign \
  -keystore "$work/ca.p12" -storetype PKCS12 -storepass "$password"
keytool -exportcert -rfc -alias ca -keystore "$work/ca.p12" -storepass "$password" \
  -file "$work/ca.pem"

keytool -genkeypair -noprompt -alias kafka -keyalg RSA -keysize 3072 -validity "$TLS_DAYS" \
  -dname "CN=kafka" \
  -keystore "$work/kafka.keystore.p12" -storetype PKCS12 -storepass "$password"
keytool -certreq -alias kafka -keystore "$work/kafka.keystore.p12" -storepass "$password" \
  -file "$work/kafka.csr"
keytool -gencert -rfc -alias ca -keystore "$work/ca.p12" -storepass "$password" \
  -validity "$TLS_DAYS" -ext "SubjectAlternativeName=$TLS_HOSTS" \
  -ext KeyUsage:critical=digitalSignature,keyEncipherment -ext ExtendedKeyUsage=serverAuth \
  -infile "$work/kafka.csr" -outfile "$work/kafka.pem"
keytool -importcert -noprompt -alias ca -file "$work/ca.pem" \
  -keystore "$work/kafka.keystore.p12" -storepass "$password"
keytool -importcert -noprompt -alias kafka -file "$work/kafka.pem" \
  -keystore "$work/kafka.keystore.p12" -storepass "$password"

# The broker's side first, the CA certificate last: a run cut short is made again whole.
mkdir -p "$SECRETS_DIR" "$CA_DIR"
cp "$work/kafka.keystore.p12" "$SECRETS_DIR/kafka.keystore.p12"
printf '%s' "$password" > "$SECRETS_DIR/kafka_keystore_creds"
printf '%s' "$password" > "$SECRETS_DIR/kafka_key_creds"  # PKCS12: key and store share it
chown "$OWNER" "$SECRETS_DIR/kafka.keystore.p12" "$SECRETS_DIR/kafka_keystore_creds" \
  "$SECRETS_DIR/kafka_key_creds"
chmod 0400 "$SECRETS_DIR/kafka.keystore.p12" "$SECRETS_DIR/kafka_keystore_creds" \
  "$SECRETS_DIR/kafka_key_creds"
cp "$work/ca.pem" "$CA_DIR/ca.pem.new"
chmod 0644 "$CA_DIR/ca.pem.new"
chmod 0755 "$CA_DIR"
mv "$CA_DIR/ca.pem.new" "$CA_DIR/ca.pem"
echo "kafka TLS: made a CA and the broker's certificate for $TLS_HOSTS, valid $TLS_DAYS days"
