"""Identity exchanges: a one-time code from a mini-program or an operator SDK in, the
subscriber's number out (`POST /api/v1/auth/exchange`).

- `wechat`: the mini-program's `getPhoneNumber` code, exchanged with WeChat's
  `phonenumber.getPhoneNumber` (`/wxa/business/getuserphonenumber`) under an access
  token from `/cgi-bin/token` (developers.weixin.qq.com).
- `onetap`: an operator one-tap (一键登录) token, exchanged with the operator or its
  aggregator for the number; the answer has Aliyun Dypnsapi `GetMobile`'s shape.

`api.identity.sim` plays both sides offline (`hotline api identity-sim`).
"""

from __future__ import annotations

from api.identity.base import IdentityExchange, IdentityRefused, IdentityUnavailable, open_exchanges

__all__ = ["IdentityExchange", "IdentityRefused", "IdentityUnavailable", "open_exchanges"]
