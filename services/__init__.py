"""The four motcua services. None imports another; they talk only through Kafka."""
