/** The German catalogues, loaded only when German is chosen (see `setLocale`). */
import elDe from 'element-plus/es/locale/lang/de'
// Element Plus's date pickers name days and months through dayjs: give it German too.
import 'dayjs/locale/de'
import de from './de'

export const messages = de

/** Element Plus's German catalogue names the weekdays of its date picker in English: fixed here. */
export const element = {
  ...elDe,
  el: {
    ...elDe.el,
    datepicker: {
      ...elDe.el.datepicker,
      weeksFull: { sun: 'Sonntag', mon: 'Montag', tue: 'Dienstag', wed: 'Mittwoch', thu: 'Donnerstag', fri: 'Freitag', sat: 'Samstag' },
    },
  },
}

