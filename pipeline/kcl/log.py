"""The KCL consumer's logger: JSON lines on stderr.

The record processor's stdout is the MultiLang protocol channel (the daemon reads action
replies from it), so nothing else may write there; the daemon copies the child's stderr
into its own log.
"""

from __future__ import annotations

import sys

from aws_lambda_powertools import Logger

logger = Logger(service="kcl-consumer", stream=sys.stderr)
