"""The container engine: the protocol the reconciler drives (`protocol`), the Docker adapter
(`docker`, `docker_mapping`), its in-memory twin for tests (`memory`) and the decoding of the
engine's log streams (`log_stream`). Other packages consume it; it imports none of them except
the orchestrator's plain data model."""
