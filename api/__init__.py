"""The open API channel: JSON for apps, mini-programs and the web portal (docs/api.md).

It calls the platform's services (balance, messages), never the menus. The plug-in is
`api.channel:PLUGIN` (`hotline.channels`), its command `api.cli:register`
(`hotline.commands`), its `/me/*` resources come from the `hotline.api` entry points.
"""
