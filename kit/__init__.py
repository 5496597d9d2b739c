"""What the three services share: settings parsing, problem details, logs, metrics, health, serving."""
