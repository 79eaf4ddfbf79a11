"""The floor every factor6 process type stands on: settings readers, the Redis connection, the key schema,
the instance registry and the clock. It imports no other factor6 package."""
