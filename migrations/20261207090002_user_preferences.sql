-- Each person's language, theme, time zone and which notifications they want (API.md
-- additions, "Profile, preferences, operations").
alter table users
    add column locale text not null default 'en' check (locale in ('en', 'de')),
    add column theme text not null default 'system' check (theme in ('light', 'dark', 'system')),
    add column time_zone text not null default 'UTC',
    add column notify jsonb not null default
        '{"email": ["assigned", "comment", "mention", "status_changed", "approval_requested"],
          "in_app": ["assigned", "comment", "mention", "status_changed", "approval_requested"]}';
