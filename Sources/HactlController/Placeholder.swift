public enum HactlControllerPlaceholder {}
