public enum HactlControlPlaceholder {}
