"""Eval suite: known Q&A pairs, offline metrics, the LangChain baseline, and the CI gate."""
