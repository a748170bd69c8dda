"""Event-driven pipelines: storage notifications and CloudEvents into function calls.

``parse`` decodes S3 notifications and CloudEvents, ``subscriptions`` matches
them against stack.yml annotations, ``delivery`` and ``routes`` deliver them
through the gateway (``add_event_routes``), ``objects`` lets functions read the
object an event names, and ``watch`` (``scalezero watch DIR``) turns files
appearing in a folder into the same notifications.
"""


def add_arguments(parser) -> None:
    """``scalezero watch`` flags (the CLI maps "watch" to this package)."""
    from scalezero.events import watch
    watch.add_arguments(parser)


def main(args) -> int:
    """``scalezero watch DIR``."""
    from scalezero.events import watch
    return watch.main(args)
