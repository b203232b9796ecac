"""MLflow: the client, and the one place metric and param names are made."""
