"""The docker-compose part of a service: ``ServiceConfig`` and its nested models."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    PrivateAttr,
    TypeAdapter,
    field_serializer,
    field_validator,
    model_validator,
)

from ._located import Problem, raise_problems
from .compose import (
    PortMapping,
    VolumeMount,
    parse_cpu,
    parse_duration,
    parse_memory,
    parse_port,
    parse_volume,
)
from .fields import (
    AbsolutePath,
    Capability,
    CommandValue,
    CpuValue,
    DeviceSpec,
    DurationValue,
    Hostname,
    ImageRef,
    MemoryValue,
    Name,
    NetworkMode,
    PortSpec,
    RestartPolicy,
    ServiceName,
    StopSignal,
    TmpfsMount,
    VolumeSpec,
)
from .labels import check_labels
from .mappings import normalise_environment, normalise_label_mapping

# strict: a wire value of the wrong type is an error, never coerced ("yes" is not a bool).
STRICT_MODEL: Final = ConfigDict(extra="forbid", frozen=True, strict=True)
_HEALTHCHECK_KINDS: Final = ("NONE", "CMD", "CMD-SHELL")
# Binding to these means "every interface", so it clashes with any address on the same port.
_WILDCARD_IPS: Final = frozenset({None, "0.0.0.0", "::"})


def _duplicates(title: str, values: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    problems: list[Problem] = []
    for index, value in enumerate(values):
        if value in seen:
            problems.append(Problem((index,), f"duplicate {what} {value!r}", value))
        seen.add(value)
    raise_problems(title, problems)


class NetworkAttachment(BaseModel):
    """Per-network options of the mapping form of ``networks``."""

    model_config = STRICT_MODEL

    aliases: list[Hostname] = Field(default_factory=list)

    @field_validator("aliases")
    @classmethod
    def _unique_aliases(cls, value: list[str]) -> list[str]:
        _duplicates("NetworkAttachment", value, "alias")
        return value


_ATTACHMENTS: Final = TypeAdapter(dict[Name, NetworkAttachment | None])


class ResourceValues(BaseModel):
    """One side of ``resources``: CPUs (``cpus`` or ``cpu``) and memory."""

    model_config = STRICT_MODEL

    cpus: CpuValue | None = Field(default=None, validation_alias=AliasChoices("cpus", "cpu"))
    memory: MemoryValue | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_cpu_key(cls, data: Any) -> Any:
        if isinstance(data, dict) and "cpus" in data and "cpu" in data:
            raise ValueError("give either 'cpus' or 'cpu', not both")
        return data

    @property
    def nano_cpus(self) -> int | None:
        return None if self.cpus is None else parse_cpu(self.cpus)

    @property
    def memory_bytes(self) -> int | None:
        return None if self.memory is None else parse_memory(self.memory)


class Resources(BaseModel):
    """Resource ``limits`` (hard caps) and ``requests`` (reservations)."""

    model_config = STRICT_MODEL

    limits: ResourceValues | None = None
    requests: ResourceValues | None = None

    @model_validator(mode="after")
    def _requests_within_limits(self) -> Resources:
        if self.limits is None or self.requests is None:
            return self
        problems: list[Problem] = []
        pairs = (
            ("cpus", self.requests.nano_cpus, self.limits.nano_cpus, self.requests.cpus),
            ("memory", self.requests.memory_bytes, self.limits.memory_bytes, self.requests.memory),
        )
        for name, requested, limit, raw in pairs:
            if requested is not None and limit is not None and requested > limit:
                message = f"requested {name} {raw!r} exceeds the limit"
                problems.append(Problem(("requests", name), message, raw))
        raise_problems("Resources", problems)
        return self


class Healthcheck(BaseModel):
    """Container health check; ``test`` is normalised to the list form."""

    model_config = STRICT_MODEL

    test: list[str]
    interval: DurationValue | None = None
    timeout: DurationValue | None = None
    start_period: DurationValue | None = None
    retries: int | None = Field(default=None, ge=0)
    disable: bool = False

    @model_validator(mode="before")
    @classmethod
    def _disable_means_none_test(cls, data: Any) -> Any:
        # compose allows "disable: true" alone; give it the equivalent test so test is always set.
        if isinstance(data, dict) and data.get("disable") is True and "test" not in data:
            return {**data, "test": ["NONE"]}
        return data

    @field_validator("test", mode="before")
    @classmethod
    def _normalise_test(cls, value: Any) -> Any:
        if isinstance(value, str):
            if value == "":
                raise ValueError("test must not be empty")
            return ["CMD-SHELL", value]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError(f"test must be a string or a list of strings, got {value!r}")
        kind = value[0] if value else None
        if kind not in _HEALTHCHECK_KINDS:
            raise ValueError(f"test list must start with NONE, CMD or CMD-SHELL, got {value!r}")
        if kind == "NONE" and len(value) != 1:
            raise ValueError("test ['NONE'] takes no arguments")
        if kind == "CMD" and len(value) < 2:
            raise ValueError("test ['CMD', ...] needs a command")
        if kind == "CMD-SHELL" and len(value) != 2:
            raise ValueError("test ['CMD-SHELL', ...] takes exactly one command string")
        return value

    @model_validator(mode="after")
    def _disable_excludes_test(self) -> Healthcheck:
        if self.disable and self.test != ["NONE"]:
            raise ValueError("disable: true cannot be combined with a test")
        return self

    @property
    def disabled(self) -> bool:
        return self.disable or self.test == ["NONE"]

    @property
    def interval_seconds(self) -> float | None:
        return None if self.interval is None else parse_duration(self.interval)

    @property
    def timeout_seconds(self) -> float | None:
        return None if self.timeout is None else parse_duration(self.timeout)

    @property
    def start_period_seconds(self) -> float | None:
        return None if self.start_period is None else parse_duration(self.start_period)


class ServiceConfig(BaseModel):
    """The docker-compose fields of a service, validated and normalised.

    ``environment`` and ``labels`` become ``dict[str, str]``; ``networks`` becomes a sorted list
    of names (aliases from the mapping form are kept in ``network_aliases``); ``tmpfs`` becomes a
    list.
    """

    model_config = STRICT_MODEL

    image: ImageRef | None = None
    command: CommandValue | None = None
    entrypoint: CommandValue | None = None
    environment: dict[str, str] = Field(default_factory=dict)
    ports: list[PortSpec] = Field(default_factory=list)
    volumes: list[VolumeSpec] = Field(default_factory=list)
    networks: list[Name] = Field(default_factory=list)
    network_mode: NetworkMode | None = None
    restart: RestartPolicy | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    user: str | None = Field(default=None, min_length=1)
    working_dir: AbsolutePath | None = None
    privileged: bool = False
    devices: list[DeviceSpec] = Field(default_factory=list)
    cap_add: list[Capability] = Field(default_factory=list)
    cap_drop: list[Capability] = Field(default_factory=list)
    tmpfs: list[TmpfsMount] = Field(default_factory=list)
    healthcheck: Healthcheck | None = None
    resources: Resources | None = None
    depends_on: list[ServiceName] = Field(default_factory=list)
    hostname: Hostname | None = None
    stop_grace_period: DurationValue | None = None
    stop_signal: StopSignal | None = None

    _network_aliases: dict[str, tuple[str, ...]] = PrivateAttr(default_factory=dict)

    @field_validator("environment", mode="before")
    @classmethod
    def _normalise_environment(cls, value: Any) -> dict[str, str]:
        return normalise_environment(value)

    @field_validator("labels", mode="before")
    @classmethod
    def _normalise_labels(cls, value: Any) -> dict[str, str]:
        return check_labels(normalise_label_mapping(value))

    @field_validator("networks", mode="before")
    @classmethod
    def _network_names(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return list(_ATTACHMENTS.validate_python(value))
        return value

    @field_validator("networks")
    @classmethod
    def _sorted_networks(cls, value: list[str]) -> list[str]:
        # Networks are a set: sorting makes equal targets compare and hash equal.
        _duplicates("ServiceConfig", value, "network")
        return sorted(value)

    @field_validator("tmpfs", mode="before")
    @classmethod
    def _tmpfs_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("devices", "cap_add", "cap_drop", "depends_on")
    @classmethod
    def _unique_items(cls, value: list[str]) -> list[str]:
        _duplicates("ServiceConfig", value, "entry")
        return value

    @field_validator("tmpfs")
    @classmethod
    def _unique_tmpfs_paths(cls, value: list[str]) -> list[str]:
        _duplicates("ServiceConfig", [entry.partition(":")[0] for entry in value], "tmpfs path")
        return value

    @model_validator(mode="wrap")
    @classmethod
    def _keep_network_aliases(
        cls, data: Any, handler: ModelWrapValidatorHandler[ServiceConfig]
    ) -> ServiceConfig:
        config = handler(data)
        raw = data.get("networks") if isinstance(data, dict) else None
        if isinstance(raw, dict):
            # Already validated by the field validator above, so this cannot fail.
            attachments = _ATTACHMENTS.validate_python(raw)
            config._network_aliases = {
                name: tuple(attachment.aliases)
                for name, attachment in sorted(attachments.items())
                if attachment is not None and attachment.aliases
            }
        return config

    @model_validator(mode="after")
    def _consistent(self) -> ServiceConfig:
        problems: list[Problem] = []
        if self.network_mode is not None and self.networks:
            problems.append(
                Problem(
                    ("network_mode",),
                    f"network_mode {self.network_mode!r} cannot be combined with networks",
                    self.network_mode,
                )
            )
        problems += _port_conflicts(self.ports)
        problems += _volume_target_conflicts(self.volumes)
        raise_problems("ServiceConfig", problems)
        return self

    @field_serializer("networks")
    def _serialise_networks(self, names: list[str]) -> list[str] | dict[str, dict[str, list[str]]]:
        # Emit the mapping form only when it carries aliases, so a dump re-parses to an equal
        # config and the state hash covers the aliases.
        if not self._network_aliases:
            return list(names)
        return {name: {"aliases": list(self._network_aliases.get(name, ()))} for name in names}

    @property
    def network_aliases(self) -> dict[str, tuple[str, ...]]:
        """Aliases per network name, only for networks that have some."""
        return dict(self._network_aliases)

    @property
    def port_mappings(self) -> tuple[PortMapping, ...]:
        return tuple(mapping for spec in self.ports for mapping in parse_port(spec))

    @property
    def volume_mounts(self) -> tuple[VolumeMount, ...]:
        return tuple(parse_volume(spec) for spec in self.volumes)

    @property
    def stop_grace_period_seconds(self) -> float | None:
        if self.stop_grace_period is None:
            return None
        return parse_duration(self.stop_grace_period)


def _port_conflicts(ports: Sequence[str | int]) -> list[Problem]:
    """Two specs publishing the same host port and protocol on overlapping addresses."""
    problems: list[Problem] = []
    taken: list[tuple[PortMapping, str | int]] = []
    for index, spec in enumerate(ports):
        for mapping in parse_port(spec):
            if mapping.host_port is None:
                continue
            clash = next((other for other in taken if _same_binding(mapping, other[0])), None)
            if clash is not None:
                message = (
                    f"host port {mapping.host_port}/{mapping.protocol} of {spec!r} is already "
                    f"published by {clash[1]!r}"
                )
                problems.append(Problem(("ports", index), message, spec))
                break
            taken.append((mapping, spec))
    return problems


def _same_binding(first: PortMapping, second: PortMapping) -> bool:
    return (
        first.host_port == second.host_port
        and first.protocol == second.protocol
        and (
            first.host_ip in _WILDCARD_IPS
            or second.host_ip in _WILDCARD_IPS
            or first.host_ip == second.host_ip
        )
    )


def _volume_target_conflicts(volumes: Sequence[str]) -> list[Problem]:
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    for index, spec in enumerate(volumes):
        target = parse_volume(spec).target.rstrip("/")
        if target in seen:
            message = f"target of {spec!r} is already mounted by {seen[target]!r}"
            problems.append(Problem(("volumes", index), message, spec))
        else:
            seen[target] = spec
    return problems
