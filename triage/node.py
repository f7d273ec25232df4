"""This process's identity among the web nodes (load-balancer routing, call ownership leases)."""

from __future__ import annotations

import os
import socket

# TRIAGE_NODE_ID when the deployment names its nodes (web1, web2, a pod name); else host:pid,
# unique per process so two daphne processes on one host never share call leases.
NODE_ID = os.environ.get("TRIAGE_NODE_ID") or f"{socket.gethostname()}:{os.getpid()}"


class NodeHeaderMiddleware:
    """``X-Triage-Node`` on every HTTP response: which web node behind the load balancer
    answered (routing checks, debugging a misrouted reconnect). Not a secret: a node name."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response["X-Triage-Node"] = NODE_ID
        return response
