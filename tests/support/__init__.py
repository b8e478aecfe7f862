"""Helpers shared by test folders: real servers started and stopped by the tests."""
