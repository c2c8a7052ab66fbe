"""Prompt templates (``*.md``), shipped as the package data of ``stride_prompts``; loaded by name."""
