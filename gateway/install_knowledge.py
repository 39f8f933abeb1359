"""The knowledge base over HTTP: the admin REST API for articles and matching settings, the public
suggestion, deflection and feedback endpoints, and the public article pages (`/kb/{id}`).

Runs after `install_dialog`, which creates the KnowledgeBase these routes read from `app[KNOWLEDGE]`.
"""

from __future__ import annotations

from gateway import kb_pages
from gateway.api import articles, matching
from gateway.api.ratelimit import TokenBucketLimiter
from gateway.api.suggest import PublicKnowledgeApi
from gateway.wiring import Wiring

# A customer typing produces about 3 debounced requests per second at most; a burst of 30 leaves room
# for several people behind one NAT address, and 5/s sustained stops a script long before the matcher
# becomes a noticeable share of the event loop.
PUBLIC_RATE_PER_SECOND = 5.0
PUBLIC_BURST = 30


def install(wiring: Wiring) -> None:
    limiter = TokenBucketLimiter(rate=PUBLIC_RATE_PER_SECOND, burst=PUBLIC_BURST)
    router = wiring.app.router
    # The fixed path /api/v1/articles/match goes before /api/v1/articles/{id}.
    router.add_routes(matching.routes)
    router.add_routes(PublicKnowledgeApi(limiter).routes())
    router.add_routes(articles.routes)
    router.add_routes(kb_pages.routes())
