"""The gateway's settings: one pydantic-settings model read from `GATEWAY_*` variables.

Build it once (`Settings()` in the CLI, `Settings(**kwargs)` in tests) and pass it down;
nothing reads the environment anywhere else. Every field's description is the
documentation: `gateway settings --markdown` renders the README's reference from it.
List settings take comma-separated values (`GATEWAY_WEBHOOK_SECRETS=a,b`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]
SecretList = Annotated[list[SecretStr], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """Everything the gateway can be told. Defaults suit a developer machine."""

    model_config = SettingsConfigDict(
        env_prefix="GATEWAY_",
        extra="forbid",
        frozen=True,
        secrets_dir=None,
    )

    # --- HTTP ---------------------------------------------------------------------------
    http_host: str = Field("127.0.0.1", description="Address the webhook server binds to.")
    http_port: int = Field(8080, description="Port of the webhook server (OC calls it).")
    metrics_port: int = Field(
        9090,
        description="Port serving /metrics, /livez and /readyz; 0 serves them on the "
        "webhook port instead.",
    )
    instance_id: str = Field(
        "",
        description="Name of this replica (pod name); used in the Kafka transactional id. "
        "Empty means the host name.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Lowest level written to the JSON log on stdout."
    )
    shutdown_grace_s: float = Field(
        20.0,
        description="Seconds from SIGTERM for in-flight requests, the processor's batch "
        "and the producer flush; work still running then is cancelled and closed within "
        "5 s more.",
    )

    # --- storage ------------------------------------------------------------------------
    data_dir: Path = Field(
        Path(".data"),
        description="Directory for the embedded log, the Kafka-outage spool and the OC "
        "token store.",
    )
    kafka_bootstrap_servers: str = Field(
        "",
        description="Kafka bootstrap servers (host:port,...). Empty runs on the embedded "
        "SQLite log.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="Kafka security protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol uses SASL."
    )
    kafka_sasl_username: str = Field("", description="SASL user name.")
    kafka_sasl_password: SecretStr = Field(SecretStr(""), description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(None, description="CA bundle for Kafka TLS.")
    kafka_ssl_certfile: Path | None = Field(None, description="Client certificate (mTLS).")
    kafka_ssl_keyfile: Path | None = Field(None, description="Client key (mTLS).")
    kafka_create_topics: bool = Field(
        True, description="Create missing topics at start (needs the CreateTopics ACL)."
    )
    kafka_partitions: int = Field(6, ge=1, description="Partitions for topics the gateway creates.")
    kafka_replication_factor: int = Field(
        1, ge=1, description="Replication factor for topics the gateway creates."
    )
    kafka_append_timeout_s: float = Field(
        2.0,
        gt=0,
        description="How long ingest waits for Kafka to confirm a raw record before it "
        "writes the record to the local spool instead.",
    )
    kafka_linger_ms: int = Field(
        0,
        ge=0,
        description="Producer linger (batching window). 0 sends a batch as soon as its "
        "partition's broker has no request in flight: records that come meanwhile batch "
        "anyway. With a linger, aiokafka wakes for every record and sends nothing until "
        "the window ends: 2 ms cost ingest 2 ms of ack latency and 6-18% of its CPU "
        "(bench/README.md).",
    )
    kafka_max_batch_bytes: int = Field(
        262144,
        ge=16384,
        description="Largest record batch per partition a producer builds. Records that "
        "arrive while a partition's request is in flight join its next batch; a small cap "
        "makes them wait and retry instead (aiokafka's 16 KiB default costs 3x the CPU per "
        "record under load).",
    )
    kafka_consumer_group: str = Field(
        "oc-gateway-processor", description="Consumer group of the processor."
    )
    kafka_transactional_id_prefix: str = Field(
        "oc-gateway", description="Prefix of the processor's transactional id."
    )
    spool_max_bytes: int = Field(
        256 * 1024 * 1024,
        gt=0,
        description="Spool size (bytes of raw bodies) at which ingest answers 503.",
    )
    embedded_retention_hours: float = Field(
        168.0,
        gt=0,
        description="How long the embedded log keeps records. Older ones are deleted once "
        "every consumer group has committed past them (the processor, `gateway dlq "
        "redrive`); compacted topics keep the newest record per key.",
    )
    retention_interval_s: float = Field(
        300.0,
        gt=0,
        description="How often retention runs on the embedded log and the spool: expired "
        "records deleted, free space given back to the file system, the WAL truncated.",
    )

    # --- topics -------------------------------------------------------------------------
    topic_raw: str = Field("oc.callbacks.raw.v1", description="Raw callbacks, as received.")
    topic_outbound: str = Field("oc.outbound.orders.v1", description="Outbound-order events.")
    topic_returns: str = Field("oc.returns.v1", description="Return events.")
    topic_inventory: str = Field(
        "oc.inventory.levels.v1", description="Inventory levels (compacted)."
    )
    topic_quarantine: str = Field(
        "oc.callbacks.quarantine.v1", description="Genuine callbacks whose shape is unknown."
    )
    topic_dlq: str = Field("oc.gateway.dlq.v1", description="Records that failed processing.")
    topic_lease: str = Field(
        "oc.gateway.lease.v1",
        description="Single-partition topic whose group membership elects the one "
        "replica that reconciles (internal, stays empty).",
    )
    topic_state: str = Field(
        "oc.gateway.state.v1",
        description="The processor's per-entity state (compacted changelog; internal).",
    )

    # --- verification (fail-closed) -----------------------------------------------------
    oc_client_key: str = Field(
        "", description="OC's client key: verifies OC-signed callbacks and signs API calls."
    )
    oc_secret_key: SecretStr = Field(SecretStr(""), description="OC's secret key.")
    oc_secret_keys_previous: SecretList = Field(
        default_factory=list,
        description="Older OC secret keys still accepted on callbacks during a rotation.",
    )
    verify_oc_signature: bool = Field(
        True,
        description="Require OC's vAuthorization signature on callbacks when the OC key "
        "pair is set. Turn off only if OC does not sign callbacks, and use another method.",
    )
    webhook_secrets: SecretList = Field(
        default_factory=list,
        description="Standard Webhooks secrets (whsec_...); several may be active.",
    )
    webhook_tolerance_s: int = Field(
        300, gt=0, description="Allowed clock skew of a Standard Webhooks timestamp."
    )
    path_tokens: SecretList = Field(
        default_factory=list,
        description="Secret path tokens: callbacks then come to /webhooks/oc/<token>/<kind>.",
    )
    allowed_source_cidrs: CommaList = Field(
        default_factory=list, description="Source networks allowed to call (empty: any)."
    )
    trusted_proxies: CommaList = Field(
        default_factory=list,
        description="Proxy networks whose X-Forwarded-For is believed.",
    )
    insecure_allow_unverified: bool = Field(
        False,
        description="Development only: accept callbacks when no verification is "
        "configured. Logged and exported as a metric on every start.",
    )

    # --- ingest limits ------------------------------------------------------------------
    max_body_bytes: int = Field(1024 * 1024, gt=0, description="Largest accepted body (413).")
    max_json_depth: int = Field(32, gt=0, description="Deepest accepted JSON nesting (400).")
    rate_limit_per_source: float = Field(
        200.0, gt=0, description="Sustained callbacks per second per source address (429)."
    )
    rate_limit_burst: int = Field(400, gt=0, description="Burst size of the per-source limit.")
    max_callbacks_in_flight: int = Field(
        1000,
        gt=0,
        description="Most callbacks handled at once: the ceiling of the adaptive admission "
        "limit. Beyond the limit a callback is answered 503 with Retry-After at once instead "
        "of queueing, so ack latency stays bounded under overload.",
    )
    admission_lag_target_ms: float = Field(
        5.0,
        gt=0,
        description="Event-loop lag the admission limit aims for: while the loop lags more "
        "than this all through a 100 ms window (the CPU cannot keep up) the limit shrinks, "
        "and it grows back when the loop is quick. No tuning per machine: the limit follows "
        "what the process can do.",
    )
    oc_success_response: str = Field(
        '{"code":0,"success":true,"message":"success","errors":[]}',
        description="JSON body answered to OC on success; messageId is echoed into it "
        "when the callback carried one.",
    )

    # --- processor ----------------------------------------------------------------------
    processor_enabled: bool = Field(
        True, description="Run the processor in this process (false: ingest only)."
    )
    ingest_workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes answering callbacks on the webhook port (Kafka only): with "
        "more than one, a primary runs the processor and the ops server and starts this many "
        "ingest workers, so ingest uses every core. One processor per replica either way.",
    )
    ingest_own_process: bool = Field(
        False,
        description="On Kafka, with the processor in this replica too: answer callbacks in "
        "an ingest worker process of their own, beside the primary process that runs the "
        "processor and the ops server. A Python process computes on one core at a time, so "
        "apart the processor's work never delays an answer and the two use two cores "
        "(faster acks, more CPU per callback: bench/README.md). Not the default yet: see "
        "the README's known limitations. The embedded log always runs in one process.",
    )
    spool_file: str = Field(
        "spool.sqlite3",
        description="The Kafka-outage spool's file in the data directory (ingest workers "
        "each use spool-w<i>.sqlite3).",
    )
    ingest_enabled: bool = Field(
        True, description="Serve the webhook routes (false: processor only)."
    )
    processor_batch_size: int = Field(
        500,
        gt=0,
        description="Most records per batch. Batches begin at the pace of OC's budget (two "
        "look-ups' worth of GATEWAY_OC_RATE_LIMIT_PER_S), each with what arrived since the one "
        "before, and those finished while a commit runs commit together; a processor that fell "
        "behind takes up to this many at once.",
    )
    processor_concurrency: int = Field(
        16,
        gt=0,
        description="No effect (deprecated): the processor works on whole batches in CPU "
        "slices of 2 ms, so callbacks sharing its process are answered between them. Kept "
        "so that configurations that set it still load.",
    )
    processor_max_attempts: int = Field(
        5, gt=0, description="Attempts before a failing record goes to the DLQ."
    )
    state_retention_days: float = Field(
        30.0, gt=0, description="How long per-entity dedup state is kept after its last change."
    )

    # --- OC API -------------------------------------------------------------------------
    oc_base_url: str = Field(
        "",
        description="OC's host: OAuth under /oauth, business API under /openapi. Empty "
        "turns enrichment off.",
    )
    oc_refresh_token: SecretStr = Field(
        SecretStr(""),
        description="First refresh token of the OAuth grant (`gateway oc login "
        "--print-secret` prints it); a token other than the store's grant wins over the "
        "store. Empty: start from the token store (`gateway oc login` writes it).",
    )
    oc_token_store: Path | None = Field(
        None,
        description="File holding the newest OAuth refresh token, mode 0600 (default: "
        "<data_dir>/oc-token.json). Processes sharing it take turns to refresh.",
    )
    oc_timeout_s: float = Field(10.0, gt=0, description="Timeout of one OC HTTP request.")
    oc_total_timeout_s: float = Field(
        30.0, gt=0, description="Upper bound on one look-up including its retries."
    )
    oc_max_concurrency: int = Field(8, gt=0, description="Concurrent OC requests per account.")
    oc_rate_limit_per_s: float = Field(
        20.0, gt=0, description="OC requests per second per account."
    )
    oc_orders_per_query: int = Field(
        200,
        ge=1,
        le=1000,
        description="Order numbers per Outbound Order Query v2. OC caps an answer at 1,000 "
        "orders and documents no limit on the list; 200 is the most its other list calls "
        "take. If OC refuses a list as too long, the client halves it until OC takes it and "
        "keeps that size. With GATEWAY_OC_RATE_LIMIT_PER_S it bounds enrichment: about "
        "budget x this many orders a second.",
    )
    oc_max_retries: int = Field(3, ge=0, description="Retries of a transient OC failure.")
    oc_breaker_failures: int = Field(
        5, gt=0, description="Consecutive failures that open an endpoint's circuit breaker."
    )
    oc_breaker_reset_s: float = Field(
        15.0, gt=0, description="Seconds an open breaker waits before one trial call."
    )
    oc_cache_ttl_s: float = Field(5.0, ge=0, description="How long look-up results are reused.")
    oc_batch_window_ms: float = Field(
        10.0,
        ge=0,
        description="How long a single look-up waits to share a batch with others; a "
        "processor batch's look-ups, asked together, go out at once.",
    )
    enrich_timeout_s: float = Field(
        2.0,
        gt=0,
        description="How long an event waits for enrichment before it is published "
        "without it (a follow-up event brings the enrichment later).",
    )
    enrich_followup_delay_s: float = Field(
        5.0,
        gt=0,
        description="First retry of a follow-up enrichment; the delay doubles up to 5 minutes.",
    )
    enrich_followup_max_age_s: float = Field(
        86400.0, gt=0, description="How long follow-up enrichment keeps trying before the DLQ."
    )

    # --- tracing ----------------------------------------------------------------------
    tracing_enabled: bool = Field(
        False,
        description="OpenTelemetry spans per callback, record and OC call, with trace "
        "context in Kafka headers (needs the otel extra).",
    )
    tracing_exporter: Literal["otlp", "console"] = Field(
        "otlp",
        description="Where spans go: OTLP/HTTP (configured by the standard OTEL_EXPORTER_OTLP_* "
        "variables) or stdout.",
    )
    tracing_service_name: str = Field("oc-event-gateway", description="service.name of the spans.")

    # --- personal data ------------------------------------------------------------------
    pii_policy: dict[str, dict[str, Literal["drop", "mask", "hash", "publish"]]] = Field(
        default_factory=dict,
        description="Per typed topic and consignee field (name, company, address1, address2, "
        "house_number, city, province_or_state, zip_code, country_code, phone, email, or * for "
        'the rest): drop, mask, hash or publish, as JSON, e.g. {"oc.outbound.orders.v1": '
        '{"country_code": "publish", "email": "hash"}}. Unlisted fields are dropped.',
    )
    pii_hmac_key: SecretStr = Field(
        SecretStr(""), description="Key of the HMAC that `hash` fields are replaced by."
    )

    # --- operator console ---------------------------------------------------------------
    console_token: SecretStr = Field(
        SecretStr(""),
        description="Token of the operator console at /console on the metrics port (never "
        "on the webhook port). Empty, and no GATEWAY_CONSOLE_TOKEN_FILE: the console is off.",
    )
    console_token_file: Path | None = Field(
        None,
        description="File holding the console token (a mounted Secret); read again when it "
        "changes, so a rotated Secret takes effect without a restart. Wins over "
        "GATEWAY_CONSOLE_TOKEN.",
    )
    console_session_ttl_s: float = Field(
        8 * 3600.0,
        gt=0,
        description="How long a console login lasts (the session cookie's lifetime).",
    )

    # --- reconciliation -----------------------------------------------------------------
    reconcile_enabled: bool = Field(
        True,
        description="Poll OC for changes no callback reported (needs GATEWAY_OC_BASE_URL); "
        "one replica at a time does it.",
    )
    reconcile_interval_s: float = Field(
        300.0, gt=0, description="Seconds between reconciliation runs (doubled while OC strains)."
    )
    reconcile_lookback_s: float = Field(
        3 * 86400.0,
        gt=0,
        description="Orders and returns created this far back are compared (OC's queries "
        "select by creation time).",
    )
    reconcile_baseline: bool = Field(
        True,
        description="On a fresh deployment (no processor state yet), the first run only "
        "records OC's current statuses instead of publishing every recent entity as "
        "reconciled.",
    )
    reconcile_max_calls: int = Field(
        50, gt=0, description="Most OC query calls one reconciliation run may make."
    )

    @field_validator(
        "oc_secret_keys_previous",
        "webhook_secrets",
        "path_tokens",
        "allowed_source_cidrs",
        "trusted_proxies",
        mode="before",
    )
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split(value)

    @property
    def processor_topics(self) -> tuple[str, ...]:
        """The topics the processor's transactions write: typed events, dead letters and
        its state changelog."""
        return (
            self.topic_outbound,
            self.topic_returns,
            self.topic_inventory,
            self.topic_dlq,
            self.topic_state,
        )

    @property
    def uses_kafka(self) -> bool:
        return bool(self.kafka_bootstrap_servers.strip())

    @property
    def serves_from_workers(self) -> bool:
        """Whether `gateway serve` answers callbacks in ingest worker processes
        (gateway/workers.py) rather than in its own."""
        if not self.ingest_enabled:
            return False
        if self.ingest_workers > 1:
            return True  # check_workers refuses it on the embedded log
        return self.uses_kafka and self.processor_enabled and self.ingest_own_process

    @property
    def console_enabled(self) -> bool:
        return self.console_token_file is not None or bool(self.console_token.get_secret_value())

    @property
    def token_store_path(self) -> Path:
        return self.oc_token_store or self.data_dir / "oc-token.json"
