"""`cdk synth` entry point (deploy/cdk/cdk.json runs it): the fraudagent stack, configured from CDK context."""

from __future__ import annotations

import sys
from pathlib import Path

import aws_cdk as cdk

# Run from deploy/cdk by the CDK CLI: the stack module sits beside this file.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from stack import DeployConfig, FraudagentStack


def build(app: cdk.App) -> FraudagentStack:
    config = DeployConfig.from_context(app.node.try_get_context)
    return FraudagentStack(
        app, "Fraudagent", config=config, description="fraudagent: tables, alert stream, roles, alarms"
    )


if __name__ == "__main__":
    cdk_app = cdk.App()
    build(cdk_app)
    cdk_app.synth()
