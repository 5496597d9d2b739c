"""What the three services share: settings, problem details, logs, metrics, health, serving."""
