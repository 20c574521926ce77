/** The English catalogue. Every new or touched SPA string goes through vue-i18n (`t('…')`). */
export default {
  composer: {
    comment: 'Comment',
    post: 'Post',
    cancel: 'Cancel',
    internalNote: 'Internal note',
    placeholderReply: 'Write a reply',
    placeholderInternal: 'Internal note (requester will not see it)',
    empty: 'Write something first',
    draftRestored: 'Your unsent reply was restored',
  },
  leave: {
    title: 'Unsent reply',
    message: 'You have an unsent reply. It stays saved as a draft on this device. Leave the page?',
    confirm: 'Leave',
    stay: 'Stay',
  },
  edit: {
    saved: 'Saved',
    merged: 'Someone else changed this ticket meanwhile; your changes were applied on top of theirs.',
    conflictTitle: 'This ticket was changed meanwhile',
    conflictHelp: 'You and someone else changed the same fields. Choose which value to keep for each.',
    field: 'Field',
    yours: 'Your value',
    theirs: 'Their value',
    keepMine: 'Keep mine',
    keepTheirs: 'Keep theirs',
    apply: 'Apply',
    cancel: 'Cancel',
    fields: {
      title: 'Title',
      description: 'Description',
      priority: 'Priority',
      type: 'Type',
      tags: 'Tags',
    },
  },
} as const
