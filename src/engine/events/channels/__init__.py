"""Channels that carry notifications to people: DingTalk, WeCom and Feishu group robots, and email.

Each module has the same surface: WINDOWS (the vendor's documented rate limits), fits(outgoing) (within
the vendor's size limit?), send(channel, outgoing, timeout=) (raises common.ChannelRefused).
"""

from __future__ import annotations

from types import MappingProxyType, ModuleType

from ecomflow.engine.events.channels import dingtalk, email, feishu, wecom

SENDERS: MappingProxyType[str, ModuleType] = MappingProxyType(
    {"dingtalk": dingtalk, "wecom": wecom, "feishu": feishu, "email": email}
)
