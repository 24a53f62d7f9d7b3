public enum HactlExecutorPlaceholder {}
