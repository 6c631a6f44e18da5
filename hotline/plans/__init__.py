"""Plan change (套餐变更): the current plan, the offers open to a subscriber, orders.

`model` holds the types; `provider` the interface an operator's catalog and ordering
system implements (`embedded` on the durable store, `http` in TMF622/TMF637 style);
`journal` the durable record of every order this service submitted; `desk` the service
the flow actions use (`hotline.flow.services.PlansService`): it derives nothing about
prices or eligibility itself, it submits each confirmed order exactly once under its
order id, waits for it within the USSD answer window, reconciles an ambiguous submission
by polling, and sends the SMS receipt.
"""
