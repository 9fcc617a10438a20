"""Command-line tools: demo, inspect, and (later) replay and evaluation."""
