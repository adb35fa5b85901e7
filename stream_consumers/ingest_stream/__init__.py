"""IngestStreamFunction: the Kinesis-triggered Lambda consumer."""
