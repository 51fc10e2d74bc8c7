"""The shipped column mappings of each platform's exports, one YAML file per platform, for a team to copy and edit."""
