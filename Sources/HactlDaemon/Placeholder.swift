public enum HactlDaemonPlaceholder {}
