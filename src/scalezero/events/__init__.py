"""Event-driven pipelines: storage notifications and CloudEvents into function calls.

``parse`` decodes S3 notifications and CloudEvents, ``subscriptions`` matches
them against stack.yml annotations, ``objects`` lets functions read the object
an event names, and ``watch`` (``scalezero watch DIR``) turns files appearing in
a folder into the same notifications. The HTTP routes that receive events and
deliver them are the gateway's (``scalezero.gateway.eventapi`` and
``scalezero.gateway.delivery``).
"""


def add_arguments(parser) -> None:
    """``scalezero watch`` flags (the CLI maps "watch" to this package)."""
    from scalezero.events import watch
    watch.add_arguments(parser)


def main(args) -> int:
    """``scalezero watch DIR``."""
    from scalezero.events import watch
    return watch.main(args)
