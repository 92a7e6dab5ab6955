"""A loopback fake TikTok for tests and benchmarks (``server.FakeTikTok``; fixture in ``pytest_plugin``).

Importing the package runs the TikTokLive metadata warm-up first, because building proto messages (the
builders in ``server``) before it would make later ``CommentEvent.user`` a plain ``User`` process-wide.
"""

from services.tiktok.adapter import warm_event_classes

warm_event_classes()
