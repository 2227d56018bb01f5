"""lbuild: build and deploy many Python AWS Lambda functions."""

__version__ = "0.1.0"
