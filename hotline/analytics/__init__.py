"""Operator analytics: self-service rate, funnels, deflection, satisfaction (docs/analytics.md).

`recorder` observes turns and rolls them up in Redis off the request path; `report`
reads the rollups into figures (with the minimum group size applied); `cli` is
`hotline report`, `web` the `/admin/analytics` page.
"""
