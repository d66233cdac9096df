"""Remote write and remote read (protobuf and snappy on the wire)."""
