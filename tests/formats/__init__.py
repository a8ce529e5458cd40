"""Tests of the individual tool-call formats."""
