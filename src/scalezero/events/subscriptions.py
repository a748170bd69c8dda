"""Which functions an event goes to: subscriptions from stack.yml annotations.

A function subscribes with annotations (one event fans out to every match)::

    scalezero.dev/trigger: s3                # s3, cloudevents, or both: "s3,cloudevents"
    scalezero.dev/s3-bucket: uploads         # comma list; absent = any bucket
    scalezero.dev/s3-prefix: raw/            # key prefix; absent = any
    scalezero.dev/s3-suffix: .jpg,.png       # comma list of key suffixes; absent = any
    scalezero.dev/s3-events: s3:ObjectCreated:*   # comma list, '*' as in MinIO; the default
    scalezero.dev/cloudevent-type: dev.scalezero.motion   # comma list; a trailing * matches a prefix
    scalezero.dev/cloudevent-source: /cameras             # optional, same syntax
    scalezero.dev/event-path: /                # path on the function that receives events

The filters are those of a MinIO bucket notification (bucket, prefix, suffix,
event names) and of a Knative Trigger (exact attribute values).
"""

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterable

from scalezero.errors import ConfigError
from scalezero.events.parse import CloudEvent, StorageEvent

P = "scalezero.dev/"
TRIGGERS = ("s3", "cloudevents")


@dataclass(frozen=True)
class Subscription:
    """One function's interest in events, from its annotations."""

    function: str  # function name
    s3: bool = False  # subscribed to object-storage notifications
    cloudevents: bool = False  # subscribed to CloudEvents
    buckets: tuple[str, ...] = ()  # accepted bucket names; () = any
    prefix: str = ""  # object key prefix
    suffixes: tuple[str, ...] = ()  # accepted key suffixes; () = any
    s3_events: tuple[str, ...] = ("s3:ObjectCreated:*",)  # event-name patterns
    ce_types: tuple[str, ...] = ()  # accepted CloudEvent types; () = any
    ce_sources: tuple[str, ...] = ()  # accepted CloudEvent sources; () = any
    path: str = "/"  # request path on the function

    def matches_storage(self, ev: StorageEvent) -> bool:
        """MinIO's rule: bucket, then event name, then key prefix and suffix."""
        return (self.s3
                and (not self.buckets or ev.bucket in self.buckets)
                and any(fnmatchcase(ev.event_name, p) for p in self.s3_events)
                and ev.key.startswith(self.prefix)
                and (not self.suffixes or ev.key.endswith(self.suffixes)))

    def matches_cloudevent(self, ev: CloudEvent) -> bool:
        """Knative Trigger filter: every given attribute must match."""
        return (self.cloudevents
                and _any_match(self.ce_types, ev.type)
                and _any_match(self.ce_sources, ev.source))


def _any_match(patterns: tuple[str, ...], value: str) -> bool:
    if not patterns:
        return True
    return any(value.startswith(p[:-1]) if p.endswith("*") else value == p for p in patterns)


def _csv(value: str | None) -> tuple[str, ...]:
    return tuple(v.strip() for v in (value or "").split(",") if v.strip())


def subscription_from(function: str, annotations: dict[str, str]) -> Subscription | None:
    """The subscription in a function's annotations, or None when it has no trigger."""
    triggers = _csv(annotations.get(P + "trigger"))
    if not triggers:
        return None
    unknown = [t for t in triggers if t not in TRIGGERS]
    if unknown:
        raise ConfigError(f"functions.{function}: {P}trigger = {unknown[0]!r}, "
                          f"must be one of {', '.join(TRIGGERS)}")
    path = annotations.get(P + "event-path", "/")
    if not path.startswith("/"):
        raise ConfigError(f"functions.{function}: {P}event-path = {path!r}, must start with /")
    return Subscription(
        function=function,
        s3="s3" in triggers,
        cloudevents="cloudevents" in triggers,
        buckets=_csv(annotations.get(P + "s3-bucket")),
        prefix=annotations.get(P + "s3-prefix", ""),
        suffixes=_csv(annotations.get(P + "s3-suffix")),
        s3_events=_csv(annotations.get(P + "s3-events")) or ("s3:ObjectCreated:*",),
        ce_types=_csv(annotations.get(P + "cloudevent-type")),
        ce_sources=_csv(annotations.get(P + "cloudevent-source")),
        path=path,
    )


def subscriptions_from(functions: Iterable) -> list[Subscription]:
    """Subscriptions of every function (objects with ``name`` and ``annotations``)."""
    subs = (subscription_from(f.name, dict(f.annotations)) for f in functions)
    return [s for s in subs if s is not None]


def storage_subscribers(subs: Iterable[Subscription], ev: StorageEvent) -> list[Subscription]:
    """Every subscription that wants this storage event."""
    return [s for s in subs if s.matches_storage(ev)]


def cloudevent_subscribers(subs: Iterable[Subscription], ev: CloudEvent) -> list[Subscription]:
    """Every subscription that wants this CloudEvent."""
    return [s for s in subs if s.matches_cloudevent(ev)]
