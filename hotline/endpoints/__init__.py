"""Declared HTTP endpoints (`http_endpoints` in the configuration) as a service for flows.

`open_endpoints(settings, …)` builds one call per endpoint inside the generic resilience
layers and hands flows the `HttpService` (`hotline.flow.services`) the `http.request`
action uses. The raw call (`client`) signs, sends and reads; nothing here knows a flow.
"""

from hotline.endpoints.client import EndpointClient
from hotline.endpoints.service import Endpoints, open_endpoints

__all__ = ["EndpointClient", "Endpoints", "open_endpoints"]
