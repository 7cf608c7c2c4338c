"""Built-in job types, each a `registry.JobType` declared in its own module."""
