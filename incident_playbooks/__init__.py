"""Response playbooks (YAML) and the engine that runs an incident through them."""
